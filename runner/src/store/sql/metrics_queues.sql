-- The queue figures of /metrics, from the hot table run_queue (active runs only, never a scan
-- of runs): per queue (and per tenant when $1), runs in each waiting or running state and how
-- long the oldest enqueued run has been due. At most $2 groups, the largest first.
SELECT q.queue,
       CASE WHEN $1::bool THEN t.name ELSE '' END AS tenant,
       count(*) FILTER (WHERE q.state = 'enqueued') AS enqueued,
       count(*) FILTER (WHERE q.state = 'running') AS running,
       count(*) FILTER (WHERE q.state = 'scheduled') AS scheduled,
       count(*) FILTER (WHERE q.state = 'retrying') AS retrying,
       coalesce(extract(epoch FROM now() - min(q.due_at) FILTER (WHERE q.state = 'enqueued')),
                0)::float8 AS oldest_enqueued_age_s
FROM run_queue q
JOIN tenants t ON t.id = q.tenant_id
GROUP BY q.queue, CASE WHEN $1::bool THEN t.name ELSE '' END
ORDER BY count(*) DESC, q.queue
LIMIT $2
