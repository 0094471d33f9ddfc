-- The tenants whose runs in queue $1 take the limited path of a claim: those with a
-- concurrency-limited (and not paused) queue of that name, and those held to `max_running`
-- ($3 is the runner's default) with ready runs in it. Disabled tenants and the tenants in $2
-- (the runner already holds runs of theirs) are left out.
SELECT s.tenant_id
FROM queues s
JOIN tenants t ON t.id = s.tenant_id
WHERE s.name = $1 AND NOT s.paused AND s.concurrency_limit IS NOT NULL
  AND s.tenant_id <> ALL ($2::int8[])
  AND t.disabled_at IS NULL
UNION
SELECT c.id
FROM (
    SELECT t.id
    FROM tenants t
    LEFT JOIN tenant_limits l ON l.tenant_id = t.id
    WHERE coalesce(l.max_running, $3::int4) IS NOT NULL
      AND t.disabled_at IS NULL
      AND t.id <> ALL ($2::int8[])
      AND NOT EXISTS (SELECT 1 FROM queues s
                      WHERE s.tenant_id = t.id AND s.name = $1 AND s.paused)
    -- A fence: the tenants held to `max_running` are found first, so the probe below runs
    -- for them only (usually none).
    OFFSET 0
) c
-- One index probe per such tenant; as EXISTS it was planned as a semi-join that read every
-- ready run of the queue.
WHERE (SELECT true FROM run_queue q
       WHERE q.state = 'enqueued' AND q.queue = $1 AND q.tenant_id = c.id
       LIMIT 1)
