-- Queues of tenant $1 (every tenant when NULL): those with settings and those holding waiting
-- or running runs, with exact counts per active state and the time the oldest enqueued run
-- became due, all from the hot table run_queue (active runs only; never a scan of runs).
WITH live AS (
    SELECT tenant_id, queue,
           count(*) FILTER (WHERE state = 'enqueued') AS enqueued,
           count(*) FILTER (WHERE state = 'running') AS running,
           count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
           count(*) FILTER (WHERE state = 'retrying') AS retrying,
           min(due_at) FILTER (WHERE state = 'enqueued') AS oldest_due
    -- One tenant's waiting and running runs through their own indexes (run_queue_waiting,
    -- run_queue_leased); every tenant's in one pass.
    FROM (SELECT tenant_id, queue, state, due_at FROM run_queue WHERE $1::int8 IS NULL
          UNION ALL
          SELECT tenant_id, queue, state, due_at FROM run_queue
          WHERE tenant_id = $1 AND state <> 'running'
          UNION ALL
          SELECT tenant_id, queue, state, due_at FROM run_queue
          WHERE tenant_id = $1 AND state = 'running') a
    GROUP BY tenant_id, queue
), names AS (
    SELECT tenant_id, name FROM queues WHERE ($1::int8 IS NULL OR tenant_id = $1)
    UNION
    SELECT tenant_id, queue FROM live
)
SELECT t.name AS tenant, n.name, coalesce(q.paused, false) AS paused, q.concurrency_limit,
       coalesce(l.enqueued, 0) AS enqueued, coalesce(l.running, 0) AS running,
       coalesce(l.scheduled, 0) AS scheduled, coalesce(l.retrying, 0) AS retrying,
       l.oldest_due, now() AS now
FROM names n
JOIN tenants t ON t.id = n.tenant_id
LEFT JOIN queues q ON q.tenant_id = n.tenant_id AND q.name = n.name
LEFT JOIN live l ON l.tenant_id = n.tenant_id AND l.queue = n.name
ORDER BY t.name, n.name
LIMIT $2
