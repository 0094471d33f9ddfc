-- A tenant's queues: those with settings and those that hold runs, with counts per state
-- (a scan of the tenant's runs: a read for people, never on the hot path).
WITH counts AS (
    SELECT queue, state::text AS state, count(*) AS n
    FROM runs WHERE tenant_id = $1
    GROUP BY queue, state
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
